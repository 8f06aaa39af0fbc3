/** The fidelity taste's geometric test: which shape an image shows, and a utility that punishes the wrong one. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fidelityUtility, fitShape, promptShape } from '../../../src/core/tiny/fidelity';
import { pooledDecode, toImageRGB } from '../../../src/core/tiny/clipScenes';
import { makeDemoRater, tasteUtility } from '../../../src/core/demo/taste';
import { temperatureForGaps } from '../../../src/core/reward/sim';
import { renderScene, SHAPES, type ColourName, type ShapeName } from '../../../src/core/tiny/scenes';
import { makeScene } from './sceneHelpers';

const decoded = (shape: ShapeName, colour: ColourName, background: ColourName, radius: number, cx = 0.5, cy = 0.5) =>
  pooledDecode(renderScene({ ...makeScene(shape, colour, background), radius, cx, cy }));

test('promptShape reads the shape word of a prompt', () => {
  assert.equal(promptShape('an orange triangle on a purple background'), 'triangle');
  assert.equal(promptShape('A big red Circle'), 'circle');
  assert.equal(promptShape('a red blob on a blue background'), undefined);
});

test('fitShape names the shape of decoded scenes of every shape, colour pair, size and place', () => {
  const pairs: Array<[ColourName, ColourName]> = [['red', 'blue'], ['yellow', 'black'], ['white', 'purple'], ['orange', 'red'], ['green', 'white']];
  for (const shape of SHAPES) for (const [fg, bg] of pairs) for (const [r, cx, cy] of [[0.2, 0.4, 0.6], [0.28, 0.5, 0.5], [0.35, 0.55, 0.45]]) {
    const fit = fitShape(decoded(shape, fg, bg, r, cx, cy));
    assert.equal(fit?.shape, shape, `${shape} ${fg} on ${bg} r=${r}: ${JSON.stringify(fit?.iou)}`);
  }
});

test('fitShape finds no shape in a plain picture', () => {
  assert.equal(fitShape(renderScene({ ...makeScene('circle', 'red', 'blue'), radius: 0 })), undefined);
});

test('the fidelity utility prefers bigger shapes of the named shape, and any named shape over another one', () => {
  const prompt = 'a red square on a blue background';
  const small = fidelityUtility(decoded('square', 'red', 'blue', 0.18), prompt);
  const big = fidelityUtility(decoded('square', 'red', 'blue', 0.32), prompt);
  const bigCircle = fidelityUtility(decoded('circle', 'red', 'blue', 0.36), prompt);
  assert.ok(big > small, `${big} > ${small}`);
  assert.ok(small > bigCircle, `a small square ${small} beats a big circle ${bigCircle} for "${prompt}"`);
  assert.ok(fidelityUtility(decoded('circle', 'red', 'blue', 0.36), 'a red circle on a blue background') > big);
});

test('the demo\'s fidelity rater judges one image by the prompt it was made for, and calibrates on same-prompt pairs', () => {
  const square = toImageRGB(decoded('square', 'red', 'blue', 0.3));
  const u = tasteUtility('fidelity');
  assert.ok(u(square, 'a red square on a blue background') > u(square, 'a red circle on a blue background'));
  const utils = [0.1, 0.2, -0.9, -0.8], prompts = ['p', 'p', 'q', 'q'];
  const rater = makeDemoRater({ taste: 'fidelity', typicalUtilities: utils, typicalPrompts: prompts, seed: 1 });
  // only the two same-prompt gaps (0.1 each) set the noise, not the cross-prompt gaps of about 1
  assert.ok(Math.abs(rater.temperature - temperatureForGaps([0.1, 0.1], 0.9)) < 1e-9, `${rater.temperature}`);
  const bigCircle = toImageRGB(decoded('circle', 'red', 'blue', 0.36));
  const sure = makeDemoRater({ taste: 'fidelity', typicalUtilities: utils, typicalPrompts: prompts, seed: 2, tieRate: 0 });
  const answers = Array.from({ length: 20 }, () => sure.rate(square, bigCircle, 'a red square on a blue background'));
  assert.deepEqual(new Set(answers), new Set(['left']), 'the square wins for a square prompt however big the circle');
});
