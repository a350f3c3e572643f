import { isAcknowledgedClass } from './error-class.ts';
import type { Sample } from './sample.ts';

export interface WriteAudit {
  /** Acknowledged writes whose row is missing after recovery (read back from the new writer). */
  lostWrites: number;
  /** Writes the client saw fail whose row exists after recovery. */
  ambiguousWrites: number;
  /** Acknowledged writes found after recovery. */
  confirmedWrites: number;
  /** Failed writes whose row is indeed absent. */
  failedWrites: number;
  /** The first keys of each kind (bounded, for the report). */
  lostKeys: string[];
  ambiguousKeys: string[];
}

export const AUDIT_KEYS_LIMIT = 20;

export function emptyAudit(): WriteAudit {
  return {
    lostWrites: 0,
    ambiguousWrites: 0,
    confirmedWrites: 0,
    failedWrites: 0,
    lostKeys: [],
    ambiguousKeys: [],
  };
}

/**
 * Lost write: a write the client saw acknowledged that is missing after recovery.
 * Ambiguous write: the client saw an error but the row exists. Jepsen-style.
 * `readBackKeys` are the keys present after recovery, read from the new writer.
 */
export function auditWrites(samples: readonly Sample[], readBackKeys: Iterable<string>): WriteAudit {
  const present = readBackKeys instanceof Set ? (readBackKeys as Set<string>) : new Set(readBackKeys);
  const audit = emptyAudit();
  for (const sample of samples) {
    if (sample.kind !== 'write' || sample.writeKey === undefined) continue;
    const exists = present.has(sample.writeKey);
    if (isAcknowledgedClass(sample.class)) {
      if (exists) audit.confirmedWrites++;
      else if (audit.lostWrites++ < AUDIT_KEYS_LIMIT) audit.lostKeys.push(sample.writeKey);
    } else if (exists) {
      if (audit.ambiguousWrites++ < AUDIT_KEYS_LIMIT) audit.ambiguousKeys.push(sample.writeKey);
    } else {
      audit.failedWrites++;
    }
  }
  return audit;
}
