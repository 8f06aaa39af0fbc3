/** An 8-bit RGB image, row-major, 3 bytes per pixel (HWC). */
export interface ImageRGB {
  width: number;
  height: number;
  /** RGB HWC, length width*height*3. */
  data: Uint8Array;
}
