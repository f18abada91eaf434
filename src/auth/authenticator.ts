// Who is calling: the bearer token becomes a set of scopes. The key from POLYHEAD_API_KEY is a bootstrap
// admin; other keys are checked against the registry and the answer cached briefly (scrypt is slow on
// purpose, and the database must stay off the inference path).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiKeyService, Scope } from './api-keys.js';

export interface Principal {
  scopes: ReadonlySet<Scope>;
}

export const anonymous: Principal = { scopes: new Set() };

const cacheMs = 30_000;

export class Authenticator {
  private readonly bootstrap?: Buffer;
  private readonly cache = new Map<string, { principal: Principal; until: number }>();

  constructor(
    private readonly keys: ApiKeyService,
    bootstrapKey?: string,
  ) {
    this.bootstrap = bootstrapKey ? digest(bootstrapKey) : undefined;
  }

  async authenticate(authorization: string | undefined): Promise<Principal> {
    const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
    if (!token) return anonymous;
    const hashed = digest(token);
    if (this.bootstrap && timingSafeEqual(hashed, this.bootstrap)) return { scopes: new Set(['admin']) };
    const id = hashed.toString('hex');
    const cached = this.cache.get(id);
    if (cached && cached.until > Date.now()) return cached.principal;
    let failed = false;
    const scopes = await this.keys.verify(token).catch(() => ((failed = true), null));
    if (failed) return anonymous; // the registry is unreachable: do not remember this answer
    const principal = scopes ? { scopes: new Set(scopes) } : anonymous;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(id, { principal, until: Date.now() + cacheMs });
    return principal;
  }

  /** Forget cached answers (after a key is revoked). */
  forget(): void {
    this.cache.clear();
  }
}

export function hasScope(principal: Principal, scope: Scope): boolean {
  return principal.scopes.has('admin') || principal.scopes.has(scope);
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
