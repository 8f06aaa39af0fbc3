/**
 * "DDPO Studio: New Experiment": name, model (embedded tiny model, a local folder, or a Hub download), the reward
 * backbone (built-in features, CLIP from the Hub, a local folder), where its reward model starts (a built-in prior that
 * fits the backbone, or cold), prompts (typed or from a file) and a preset, all in
 * quick picks that stay open when focus moves (a dashboard redrawing, a notification), so a half-answered wizard is
 * never lost; writes experiment.json and ddpo.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EMBEDDED_MODEL_ID } from '../../core/experiment/modelDir';
import { atomicWriteFileSync } from '../../core/fsutil';
import { BUILTIN_BACKBONE_ID, DEFAULT_CLIP_BACKBONE_ID, TINY_CLIP_BACKBONE_ID, type BaseModelRef, type RewardBackboneRef } from '../../core/experiment/schema';
import { experimentNameProblem } from '../../core/experiment/store';
import { inspectBackboneFolder } from '../../core/models/backboneFolder';
import { fittingPriors, localBackboneTraits, PRIOR_DESCRIPTIONS, type BackboneTraits, type PriorName } from '../../core/reward/priorNames';
import { cachedModelDir, defaultModelCacheDir, hubEndpoint, isCompleteDownload, BACKBONE_REPO } from '../../core/models/hubDownload';
import { inspectModelFolder, type ModelFolderProblem } from '../../core/models/modelFolder';
import { parsePrompts, PRESETS, type ExperimentPreset } from '../../core/studio/presets';
import type { Services } from '../services';
import type { ModelReport } from '../../protocol';
import { formatModelReport } from '../../core/doctor/format';
import { requireStore } from '../workspaceStore';
import { embeddedModelDir, hasEmbeddedModel } from '../studio/models';

/** Prompts offered for the embedded model, which knows only shapes, colours, sizes and positions. */
const TINY_PROMPTS = 'a big red circle on a blue background; a small yellow square on the left on a black background';

/** Creates an experiment; `name` may be passed by other commands or tests to skip every question. */
export async function newExperiment(services: Services, name?: string): Promise<string | undefined> {
  const store = requireStore();
  if (!store) return undefined;
  const existing = new Set((await store.list()).map((e) => e.name));
  const chosen =
    name ??
    (await vscode.window.showInputBox({
      title: 'New DDPO Studio experiment (1/6): name',
      ignoreFocusOut: true,
      prompt: `Name of the experiment folder under ${store.root}`,
      placeHolder: 'e.g. watercolor-cats',
      validateInput: (v) => experimentNameProblem(v.trim()) ?? (existing.has(v.trim()) ? `"${v.trim()}" already exists` : null),
    }));
  if (chosen === undefined) return undefined;
  let init: { baseModel?: BaseModelRef; rewardBackbone?: RewardBackboneRef; rewardPrior?: PriorName; prompts?: string[]; preset?: ExperimentPreset } = {};
  if (name === undefined) {
    const baseModel = await pickModel(services);
    if (!baseModel) return undefined;
    const rewardBackbone = await pickBackbone(services, baseModel.id === EMBEDDED_MODEL_ID);
    if (!rewardBackbone) return undefined;
    const start = await pickPrior(rewardBackbone);
    if (!start) return undefined;
    const prompts = await pickPrompts(baseModel.id === EMBEDDED_MODEL_ID ? TINY_PROMPTS : '');
    if (!prompts) return undefined;
    const preset = await pickPreset(baseModel.id === EMBEDDED_MODEL_ID);
    if (!preset) return undefined;
    if (baseModel.id !== EMBEDDED_MODEL_ID && baseModel.path && !(await modelUsable(services, baseModel.path, preset))) return undefined;
    init = { baseModel, rewardBackbone, ...(start.prior ? { rewardPrior: start.prior } : {}), prompts, preset };
  }
  try {
    const exp = await store.create(chosen.trim(), { baseModel: init.baseModel, rewardBackbone: init.rewardBackbone, rewardPrior: init.rewardPrior, prompts: init.prompts, settings: init.preset?.settings });
    if (init.preset) atomicWriteFileSync(path.join(store.dirOf(exp.name), 'ddpo.json'), JSON.stringify(init.preset.ddpo, null, 2) + '\n');
  } catch (e) {
    void vscode.window.showErrorMessage(`Could not create the experiment: ${(e as Error).message}`);
    return undefined;
  }
  services.output.appendLine(`[host] created experiment ${chosen.trim()} in ${store.root}`);
  return chosen.trim();
}

async function pickModel(services: Services): Promise<BaseModelRef | undefined> {
  const items: (vscode.QuickPickItem & { id: string })[] = [
    { id: 'embedded', label: '$(package) Embedded tiny model', description: 'tiny-shapes, 32 px', detail: 'Coloured shapes on plain backgrounds; runs in seconds on a CPU. Good for learning the loop.' },
    { id: 'folder', label: '$(folder) Local folder…', detail: 'A Stable Diffusion ONNX folder (unet/, text_encoder/, vae_decoder/, tokenizer/, scheduler/)' },
    { id: 'hub', label: '$(cloud-download) Download from the Hugging Face Hub…', detail: 'A repo with the ONNX export, e.g. an optimum-exported SD 1.5' },
  ];
  if (!hasEmbeddedModel(services.context)) items.shift();
  const pick = await vscode.window.showQuickPick(items, { ignoreFocusOut: true, title: 'New DDPO Studio experiment (2/6): base model', placeHolder: 'Which image model do you want to teach?' });
  if (!pick) return undefined;
  if (pick.id === 'embedded') return { id: EMBEDDED_MODEL_ID, path: embeddedModelDir(services.context) };
  if (pick.id === 'folder') {
    const uri = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, title: 'Stable Diffusion ONNX folder', openLabel: 'Use this model' });
    if (!uri?.[0]) return undefined;
    const { folder, problems } = inspectModelFolder(uri[0].fsPath);
    if (!folder) {
      void vscode.window.showErrorMessage(notAModelMessage(uri[0].fsPath, problems));
      return undefined;
    }
    return { id: folder.modelId || path.basename(uri[0].fsPath), path: uri[0].fsPath };
  }
  const repo = await vscode.window.showInputBox({ ignoreFocusOut: true, title: 'Hugging Face repo with an ONNX Stable Diffusion export', placeHolder: 'owner/name', validateInput: (v) => (/^[\w.-]+\/[\w.-]+$/.test(v.trim()) ? null : 'use the form owner/name') });
  if (!repo) return undefined;
  const dir = await download(services, repo.trim(), 'pipeline');
  return dir === undefined ? undefined : { id: repo.trim(), path: dir };
}

// Downloads a Hub repo through the worker with a cancellable progress notification; undefined (after saying why) when it fails.
async function download(services: Services, repo: string, kind: 'pipeline' | 'backbone'): Promise<string | undefined> {
  try {
    const endpoint = hubEndpoint();
    const from = endpoint === 'https://huggingface.co' ? '' : ` from ${endpoint}`;
    const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Downloading ${repo}${from}`, cancellable: true }, (progress, token) => {
      const ctl = new AbortController();
      token.onCancellationRequested(() => ctl.abort());
      return services.worker.request('downloadModel', { repo, cacheDir: defaultModelCacheDir(), kind }, { signal: ctl.signal, onProgress: (p) => progress.report({ message: p.message }) });
    });
    return r.dir;
  } catch (e) {
    const offline = kind === 'backbone' ? ' Without a connection, pick "Local folder…" with a copy of the backbone, or the built-in features; nothing was created.' : '';
    void vscode.window.showErrorMessage(`Could not download ${repo}: ${(e as Error).message}.${offline}`);
    return undefined;
  }
}

/** The reward backbone choices: the built-in features first for the embedded model, CLIP first for real ones. */
async function pickBackbone(services: Services, embedded: boolean): Promise<RewardBackboneRef | undefined> {
  const cached = isCompleteDownload(cachedModelDir(defaultModelCacheDir(), DEFAULT_CLIP_BACKBONE_ID), BACKBONE_REPO);
  const builtin = {
    id: 'builtin', label: '$(symbol-misc) Built-in shape features', description: 'no download',
    detail: embedded ? 'Colours and the foreground shape: what the embedded model\'s images differ in. Instant on a CPU.' : 'Made for the embedded shapes model: they cannot see lighting, style or the prompt\'s subject in real images.',
  };
  const items = [
    { id: 'clip', label: '$(cloud-download) CLIP ViT-L/14', description: `${DEFAULT_CLIP_BACKBONE_ID}${cached ? ', downloaded' : ', about 1.7 GB from the Hub'}`, detail: 'Image and text towers: the reward sees each image and the prompt it was made for.' },
    { id: 'folder', label: '$(folder) Local folder…', detail: 'A CLIP ONNX export: onnx/vision_model.onnx with onnx/text_model.onnx and tokenizer.json, onnx/model.onnx, or an image encoder model.onnx' },
    { id: 'hub', label: '$(cloud-download) Another Hugging Face repo…', detail: 'A CLIP ONNX export in the transformers.js layout, e.g. Xenova/clip-vit-base-patch32' },
  ];
  // the embedded model's images are the tiny CLIP's world: with it the reward also sees the prompt
  const tinyClip = { id: 'tiny-clip', label: '$(symbol-misc) Embedded tiny CLIP', description: 'no download', detail: 'Image and text towers trained on the shapes world: the reward sees each image and the prompt it was made for (whether the shape is the one asked for).' };
  const ordered = embedded ? [builtin, tinyClip, ...items] : [...items, builtin];
  const pick = await vscode.window.showQuickPick(ordered, { ignoreFocusOut: true, title: 'New DDPO Studio experiment (3/6): reward backbone', placeHolder: 'What should the reward model see your ratings through?' });
  if (!pick) return undefined;
  if (pick.id === 'builtin') return { id: BUILTIN_BACKBONE_ID };
  if (pick.id === 'tiny-clip') return { id: TINY_CLIP_BACKBONE_ID };
  if (pick.id === 'folder') return pickBackboneFolder();
  const repo = pick.id === 'clip' ? DEFAULT_CLIP_BACKBONE_ID : (await vscode.window.showInputBox({
    ignoreFocusOut: true, title: 'Hugging Face repo with a CLIP ONNX export', placeHolder: 'owner/name', validateInput: (v) => (/^[\w.-]+\/[\w.-]+$/.test(v.trim()) ? null : 'use the form owner/name'),
  }))?.trim();
  if (!repo) return undefined;
  const dir = await download(services, repo, 'backbone');
  return dir === undefined ? undefined : { id: repo, path: dir };
}

/**
 * Where the reward model starts: each built-in prior that fits the backbone (a pretrained one first, so that a few dozen
 * ratings correct a good reward instead of building one), or cold, from the ratings alone (first on the built-in
 * features, whose prior is only a guess at a taste). `{}` is cold; undefined: the wizard was closed.
 */
async function pickPrior(backbone: RewardBackboneRef): Promise<{ prior?: PriorName } | undefined> {
  let traits: BackboneTraits;
  try {
    traits = localBackboneTraits(backbone);
  } catch (e) {
    void vscode.window.showErrorMessage(`${(e as Error).message}; nothing was created.`);
    return undefined;
  }
  const priors = fittingPriors(traits).map((name) => ({ label: `$(sparkle) Start from ${name}`, detail: PRIOR_DESCRIPTIONS[name], prior: name }));
  const cold = { label: '$(circle-outline) Start cold', detail: 'Learn only from your ratings: nothing assumed, but it needs more of them.', prior: undefined };
  const items = traits.builtin ? [cold, ...priors] : [...priors, cold];
  const pick = await vscode.window.showQuickPick(items, {
    ignoreFocusOut: true, title: 'New DDPO Studio experiment (4/6): where the reward model starts',
    placeHolder: 'A built-in reward that your ratings correct, or your ratings alone? (rewardPrior)',
  });
  return pick && (pick.prior ? { prior: pick.prior } : {});
}

async function pickBackboneFolder(): Promise<RewardBackboneRef | undefined> {
  const uri = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, title: 'Reward backbone folder', openLabel: 'Use this backbone' });
  if (!uri?.[0]) return undefined;
  try {
    inspectBackboneFolder(uri[0].fsPath);
  } catch (e) {
    void vscode.window.showErrorMessage(`${(e as Error).message}; nothing was created.`);
    return undefined;
  }
  return { id: path.basename(uri[0].fsPath), path: uri[0].fsPath };
}

async function pickPrompts(suggested: string): Promise<string[] | undefined> {
  const how = await vscode.window.showQuickPick(
    [{ id: 'type', label: '$(edit) Type prompts…', detail: 'Separate prompts with ";"' }, { id: 'file', label: '$(file) Read prompts from a file…', detail: 'One prompt per line; lines starting with # are ignored' }],
    { ignoreFocusOut: true, title: 'New DDPO Studio experiment (5/6): prompts', placeHolder: 'Which prompts should the model get better at?' },
  );
  if (!how) return undefined;
  if (how.id === 'file') {
    const uri = await vscode.window.showOpenDialog({ canSelectFiles: true, title: 'Prompts file', filters: { 'Text files': ['txt'], 'All files': ['*'] } });
    if (!uri?.[0]) return undefined;
    const prompts = parsePrompts(fs.readFileSync(uri[0].fsPath, 'utf8'));
    if (prompts.length === 0) void vscode.window.showWarningMessage(`${uri[0].fsPath} has no prompts; add some later in the experiment panel.`);
    return prompts;
  }
  const text = await vscode.window.showInputBox({ ignoreFocusOut: true, title: 'Prompts, separated by ";"', value: suggested, prompt: 'e.g. a watercolor cat; a lighthouse at dusk', validateInput: (v) => (parsePrompts(v).length ? null : 'type at least one prompt') });
  return text === undefined ? undefined : parsePrompts(text);
}

async function pickPreset(cpuFirst: boolean): Promise<ExperimentPreset | undefined> {
  const items = PRESETS.map((p) => ({ label: p.label, detail: p.detail, preset: p }));
  if (!cpuFirst) items.reverse();
  const pick = await vscode.window.showQuickPick(items, { ignoreFocusOut: true, title: 'New DDPO Studio experiment (6/6): preset', placeHolder: 'How big should sampling and training be? (editable later in ddpo.json)' });
  return pick?.preset;
}

/**
 * `ddpo doctor` on the chosen model at the preset's settings, before anything is created: the report goes to the
 * output channel; a model that cannot sample here stops, one that samples but cannot be fine-tuned asks first.
 */
async function modelUsable(services: Services, modelDir: string, preset: ExperimentPreset): Promise<boolean> {
  let report: ModelReport;
  const ctl = new AbortController();
  try {
    report = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Checking the model', cancellable: true }, (progress, token) => {
      token.onCancellationRequested(() => ctl.abort());
      return services.worker.request('checkModel', { modelDir, ddpo: preset.ddpo }, { signal: ctl.signal, onProgress: (p) => progress.report({ message: p.message }) });
    });
  } catch (e) {
    if (!ctl.signal.aborted) void vscode.window.showErrorMessage(`Could not check the model ${modelDir}: ${(e as Error).message}`);
    return false;
  }
  // a check that finished as it was cancelled: the person said no, so nothing is created
  if (ctl.signal.aborted) return false;
  for (const line of formatModelReport(report)) services.output.appendLine(`[doctor] ${line}`);
  if (report.canSample && report.canTrain) return true;
  const detail = report.findings.filter((f) => f.level === 'error').map((f) => `• ${f.message}\n  What to do: ${f.fix}`).join('\n\n');
  if (!report.canSample) {
    await vscode.window.showErrorMessage(`${modelDir} cannot generate images here; nothing was created.`, { modal: true, detail });
    return false;
  }
  const go = 'Create Anyway';
  return (await vscode.window.showWarningMessage(`${modelDir} generates images here but cannot be fine-tuned with these settings.`, { modal: true, detail }, go)) === go;
}

// One line for a notification: what is missing or broken, then which folder to pick instead.
function notAModelMessage(dir: string, problems: ModelFolderProblem[]): string {
  const missing = problems.filter((p) => p.problem.startsWith('missing')).map((p) => p.file);
  const broken = problems.filter((p) => !p.problem.startsWith('missing')).map((p) => (p.file === '.' ? p.problem : `${p.file} ${p.problem}`));
  const what = [missing.length ? `it lacks ${missing.join(', ')}` : '', ...broken].filter(Boolean).join('; ');
  return `${dir} is not a Stable Diffusion ONNX model folder: ${what}. Pick the folder that holds model_index.json next to unet/, text_encoder/, vae_decoder/, tokenizer/ and scheduler/ (the diffusers/optimum ONNX layout); nothing was created.`;
}
