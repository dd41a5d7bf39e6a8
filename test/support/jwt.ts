import { createHmac, createPrivateKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The key pair cognito-local signs every token with; it ships in its package, so it is public. */
export function cognitoLocalKeys(): { privateKey: KeyObject; publicPem: string; kid: string } {
  const read = (file: string) =>
    JSON.parse(readFileSync(require.resolve(`cognito-local/lib/keys/${file}`), 'utf8')) as {
      pem: string;
      jwk: { kid: string };
    };
  const priv = read('cognitoLocal.private.json');
  return {
    privateKey: createPrivateKey(priv.pem),
    publicPem: read('cognitoLocal.public.json').pem,
    kid: priv.jwk.kid,
  };
}

/** A fresh RSA key nobody trusts: what an attacker signs with. */
export function attackerKey(): { privateKey: KeyObject; publicJwk: Record<string, unknown> } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey, publicJwk: publicKey.export({ format: 'jwk' }) as Record<string, unknown> };
}

export type Signer = { rsa: KeyObject } | { hmac: string } | 'unsigned';

/** Builds a compact JWS by hand, so a test can make any token, including ones no library would. */
export function signJwt(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  signer: Signer,
): string {
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(
    JSON.stringify(payload),
  ).toString('base64url')}`;
  if (signer === 'unsigned') return `${input}.`;
  const signature =
    'rsa' in signer
      ? sign('sha256', Buffer.from(input), signer.rsa)
      : createHmac('sha256', signer.hmac).update(input).digest();
  return `${input}.${signature.toString('base64url')}`;
}

/** The claims of a token, without checking anything. */
export function decodeClaims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
}
