/**
 * What an operator groups failed and timed-out jobs by: jobs that failed for the same cause
 * share a fingerprint, and a group is re-driven by it. Written `kind:stage:code:provider`, with
 * `-` for a stage or provider that is not known (`vlog:transferring:TRANSFER_FAILED:-`).
 */
export interface FailureFingerprint {
  kind: string;
  /** The status the job was in when it failed; null for jobs whose log did not say. */
  stage: string | null;
  code: string;
  /** The provider whose call ended the job; null when none did (or it is not known). */
  provider: string | null;
}

/** The written form: four `:`-separated parts, `-` for none. */
export const fingerprintPattern = /^([a-z][a-z0-9-]*):([a-z-]+):([A-Z][A-Z0-9_]*):([a-z0-9._-]+)$/;

export function formatFingerprint(fingerprint: FailureFingerprint): string {
  const { kind, stage, code, provider } = fingerprint;
  return `${kind}:${stage ?? '-'}:${code}:${provider ?? '-'}`;
}

/** The fingerprint a written one names, or null when it is not one. */
export function parseFingerprint(text: string): FailureFingerprint | null {
  const match = fingerprintPattern.exec(text);
  if (!match) return null;
  const [, kind, stage, code, provider] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
  ];
  return {
    kind,
    stage: stage === '-' ? null : stage,
    code,
    provider: provider === '-' ? null : provider,
  };
}
