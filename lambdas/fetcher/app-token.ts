/**
 * The Socrata app token from Secrets Manager, cached for the life of the process (one
 * GetSecretValue per cold start). The value is never logged and never leaves this module except
 * as the X-App-Token header.
 */
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

const cache = new Map<string, Promise<string>>();

/** The token from a secret holding a plain string or `{"appToken": "..."}`. */
export function parseAppTokenSecret(secretString: string, secretName: string): string {
  const trimmed = secretString.trim();
  if (trimmed.startsWith('{')) {
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch {
      throw new Error(`Secret ${secretName} looks like JSON but does not parse; store the token as a plain string or {"appToken": "..."}`);
    }
    const token = (value as { appToken?: unknown }).appToken;
    if (typeof token !== 'string' || !token) throw new Error(`Secret ${secretName} is JSON without a string "appToken" field`);
    return token;
  }
  if (!trimmed) throw new Error(`Secret ${secretName} is empty`);
  return trimmed;
}

export function getAppToken(client: SecretsManagerClient, secretName: string): Promise<string> {
  let token = cache.get(secretName);
  if (!token) {
    // A total deadline: a Secrets Manager endpoint that never answers must not hang the invocation.
    token = client.send(new GetSecretValueCommand({ SecretId: secretName }), { abortSignal: AbortSignal.timeout(15_000) }).then((res) => {
      if (typeof res.SecretString !== 'string') throw new Error(`Secret ${secretName} has no SecretString (binary secrets are not supported)`);
      return parseAppTokenSecret(res.SecretString, secretName);
    });
    // A failed lookup is not cached: the next invocation tries again.
    token.catch(() => cache.delete(secretName));
    cache.set(secretName, token);
  }
  return token;
}
