/** The key of a write probe's row: the same on the sample and on the read-back row. */
export function writeKeyOf(endpoint: string, seq: number): string {
  return `${endpoint}#${seq}`;
}
