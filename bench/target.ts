/** One line of `npm run bench`'s targets table: what is asked, what was measured, whether it passes. */
export interface Target {
  name: string;
  target: string;
  measured: string;
  pass: boolean;
}
