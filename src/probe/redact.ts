// Secrets never leave a prober in a message: a driver may echo a connection string, an IAM
// auth token is a presigned URL. Shared by the prober pods (server/prober-service.ts) and
// `failwatch run` (engine/run-experiment.ts), so both show the same text.

/** Replaces every credential it was given, and IAM auth token signatures, in a text. */
export class Redactor {
  readonly #secrets: Set<string>;

  constructor(secrets: Iterable<string> = []) {
    this.#secrets = new Set(secrets);
  }

  /** Remembers a credential (an empty one, as with IAM authentication, is ignored). */
  add(secret: string): void {
    if (secret) this.#secrets.add(secret);
  }

  redact(text: string): string {
    let out = text;
    for (const secret of this.#secrets) out = out.replaceAll(secret, '[redacted]');
    // IAM auth tokens are made per connection and never stored here: hide their signatures.
    return out.replace(/X-Amz-Signature=[0-9a-fA-F]+/g, 'X-Amz-Signature=[redacted]');
  }
}
