/** The procedural scene generator: seeded, captions that match the drawn scene, and pixel measurements that recover it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mulberry32 } from '../../../src/core/random';
import { COLOURS, PALETTE, POSITIONS, SHAPES, caption, randomScene, renderScene } from '../../../src/core/tiny/scenes';
import { makeScene, shapeArea } from './sceneHelpers';
import { measureImage, nearestColour, warmth } from '../../../src/core/tiny/measure';

test('the same seed draws the same scenes and pixels, another seed different ones', () => {
  const draw = (seed: number) => { const r = mulberry32(seed); return Array.from({ length: 20 }, () => randomScene(r)); };
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7), draw(8));
  const s = draw(7)[3];
  assert.deepEqual(renderScene(s).data, renderScene(s).data);
});

test('captions name the scene attributes in order, and the background differs from the shape colour', () => {
  const r = mulberry32(1);
  for (let i = 0; i < 200; i++) {
    const s = randomScene(r);
    const c = caption(s);
    assert.notEqual(s.colour, s.background);
    assert.ok(c.startsWith('a '), c);
    assert.ok(c.endsWith(`on a ${s.background} background`), c);
    assert.ok(c.includes(`${s.colour} ${s.shape}`), c);
    assert.equal(c.includes(` ${s.size} `), s.captionHasSize, c);
    const placed = ['left', 'right', 'top', 'bottom', 'centre'].some((p) => c.includes(`the ${p}`));
    assert.equal(placed, s.captionHasPosition, c);
    if (s.captionHasPosition) assert.ok(c.includes(s.position), c);
  }
  assert.equal(caption(makeScene('circle', 'red', 'blue')), 'a big red circle in the centre on a blue background');
});

test('rendered pixels are the palette colours, with anti-aliased edges in between', () => {
  const s = makeScene('square', 'yellow', 'purple', 'big', 'centre');
  const img = renderScene(s, 32);
  const px = (x: number, y: number) => Array.from(img.data.subarray((y * 32 + x) * 3, (y * 32 + x) * 3 + 3));
  assert.deepEqual(px(16, 16).map((v) => +v.toFixed(4)), PALETTE.yellow.map((v) => +v.toFixed(4)));
  assert.deepEqual(px(0, 0).map((v) => +v.toFixed(4)), PALETTE.purple.map((v) => +v.toFixed(4)));
  const mixed = [...img.data].filter((v, i) => i % 3 === 0 && v > PALETTE.purple[0] + 0.02 && v < PALETTE.yellow[0] - 0.02);
  assert.ok(mixed.length > 0, 'no edge pixel is a mix of the two colours');
});

test('measureImage recovers colour, background, size and position of rendered scenes', () => {
  const r = mulberry32(5);
  for (let i = 0; i < 60; i++) {
    const s = randomScene(r);
    const m = measureImage(renderScene(s, 32));
    assert.equal(m.shapeName, s.colour, `shape colour of ${caption(s)}`);
    assert.equal(m.backgroundName, s.background, `background of ${caption(s)}`);
    assert.ok(Math.abs(m.cx - s.cx) < 0.03 && Math.abs(m.cy - s.cy) < 0.03, `centroid (${m.cx}, ${m.cy}) vs (${s.cx}, ${s.cy})`);
    assert.ok(Math.abs(m.area - shapeArea(s)) < 0.25 * shapeArea(s) + 0.01, `area ${m.area} vs ${shapeArea(s)} for ${caption(s)}`);
    assert.equal(m.shapeGuess, s.shape, `shape of ${caption(s)} (fill ${m.fill})`);
  }
});

test('measured size separates big from small, position and warmth follow the scene', () => {
  for (const shape of SHAPES) {
    const big = measureImage(renderScene(makeScene(shape, 'red', 'blue', 'big', 'left')));
    const small = measureImage(renderScene(makeScene(shape, 'red', 'blue', 'small', 'left')));
    assert.ok(big.area > 2.5 * small.area, `${shape}: big ${big.area} vs small ${small.area}`);
    assert.ok(big.cx < 0.4 && small.cx < 0.4, `${shape} on the left measured at x=${big.cx}, ${small.cx}`);
    assert.ok(big.offCentre > 0.15);
  }
  const centred = measureImage(renderScene(makeScene('circle', 'red', 'blue', 'small', 'centre')));
  assert.ok(centred.offCentre < 0.03);
  assert.ok(Math.abs(POSITIONS.top[1] - measureImage(renderScene(makeScene('circle', 'green', 'black', 'small', 'top'))).cy) < 0.03);
  assert.ok(warmth(PALETTE.red) > 0.5 && warmth(PALETTE.orange) > 0.5 && warmth(PALETTE.blue) < -0.5 && warmth(PALETTE.white) === 0);
  for (const c of COLOURS) assert.equal(nearestColour(PALETTE[c]), c);
});

test('measureImage reads 8-bit images like the generator produces', () => {
  const img = renderScene(makeScene('triangle', 'orange', 'green', 'big', 'right'));
  const bytes = Uint8Array.from(img.data, (v) => Math.round(v * 255));
  const m = measureImage({ width: 32, height: 32, data: bytes });
  assert.equal(m.shapeName, 'orange');
  assert.equal(m.backgroundName, 'green');
  assert.ok(m.cx > 0.6);
  assert.ok(m.warmth > 0.5);
});
