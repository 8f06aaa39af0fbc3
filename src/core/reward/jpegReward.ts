import { encodeJpeg } from '../image/jpeg';
import type { ImageRGB } from '../image/rgb';

/** Size in kB (bytes/1000) of the image as a quality-95 4:2:0 JPEG, as in the DDPO paper. */
export function jpegSizeKB(img: ImageRGB): number {
  return encodeJpeg(img, { quality: 95, subsampling: '420' }).length / 1000;
}

/** DDPO "compressibility" reward: minus the JPEG size in kB. */
export function jpegCompressibility(img: ImageRGB): number {
  return -jpegSizeKB(img);
}

/** DDPO "incompressibility" reward: the JPEG size in kB. */
export function jpegIncompressibility(img: ImageRGB): number {
  return jpegSizeKB(img);
}
