/** The fidelity taste's geometric test: which shape an image shows, and a utility that punishes the wrong one. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fidelityUtility, fitShape, promptShape } from '../../../src/core/tiny/fidelity';
import { pooledDecode } from '../../../src/core/tiny/clipScenes';
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
