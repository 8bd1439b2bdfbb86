/**
 * Removes secrets (the Socrata app token) from text bound for an error message, a log line, a
 * run summary or a notification. A hostile or broken source can echo request headers back in an
 * error body, so every excerpt of a response passes through here, not only our own messages.
 */
export const REDACTED = '[REDACTED]';

/** A function replacing each secret, raw or as it looks URL- or JSON-encoded, by [REDACTED]. */
export function redactor(secrets: readonly (string | undefined)[]): (text: string) => string {
  const forms = new Set<string>();
  for (const s of secrets) {
    // A very short "secret" would redact ordinary words; real app tokens are 25 characters.
    if (!s || s.length < 6) continue;
    forms.add(s);
    forms.add(encodeURIComponent(s));
    forms.add(JSON.stringify(s).slice(1, -1));
  }
  const list = [...forms].sort((a, b) => b.length - a.length);
  if (!list.length) return (text) => text;
  return (text) => {
    let out = text;
    for (const f of list) out = out.split(f).join(REDACTED);
    return out;
  };
}

/** Redacts an error's message and stack in place (and its causes'), then returns it. */
export function redactError<T>(err: T, redact: (text: string) => string): T {
  let e: unknown = err;
  for (let depth = 0; e instanceof Error && depth < 5; depth++) {
    e.message = redact(e.message);
    if (e.stack) e.stack = redact(e.stack);
    e = e.cause;
  }
  return err;
}
