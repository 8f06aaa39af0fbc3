/** Registers the @vscode/webview-ui-toolkit components the studio uses (themed by VS Code's CSS variables). */
import { provideVSCodeDesignSystem, vsCodeBadge, vsCodeButton, vsCodeDivider, vsCodeProgressRing} from '@vscode/webview-ui-toolkit';

/** Call once before creating `vscode-*` elements. */
export function registerToolkit(): void {
  provideVSCodeDesignSystem().register(vsCodeButton(), vsCodeProgressRing(), vsCodeBadge(), vsCodeDivider());
}
