// Secrets never leave a prober in a message: a driver may echo a connection string, an IAM
// auth token is a presigned URL. Shared by the prober pods (server/prober-service.ts) and
// `failwatch run` (engine/run-experiment.ts), so both show the same text.

/** Replaces every credential it was given, and IAM auth token signatures, in a text. */
export class Redactor {
  readonly #secrets: Set<string>;

  constructor(secrets: Iterable<string> = []) {
    this.#secrets = new Set();
    for (const secret of secrets) this.add(secret);
  }

  /**
   * Remembers a credential, as written and as it appears in a URL (percent-encoded); an empty
   * one, as with IAM authentication, is ignored.
   */
  add(secret: string): void {
    if (!secret) return;
    this.#secrets.add(secret);
    this.#secrets.add(encodeURIComponent(secret));
  }

  redact(text: string): string {
    let out = text;
    for (const secret of this.#secrets) out = out.replaceAll(secret, '[redacted]');
    // IAM auth tokens are made per connection and never stored here: hide their signatures and
    // session tokens, plain or percent-encoded (a token inside a URL).
    return out.replace(/(X-Amz-(?:Signature|Security-Token))(=|%3D)(?:(?!%26)[^&\s"'])+/gi, '$1$2[redacted]');
  }
}
