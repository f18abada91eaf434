// API keys kept in the registry: `ph_<prefix>_<secret>`, of which only scrypt(secret, salt) is stored.
// The key is shown once, at creation. Scopes: read, write (registry changes), train (trainHead), admin
// (keys, loading models; implies every other scope).
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { PolyheadError } from '../errors.js';
import type { PrismaClient } from '../generated/prisma/client.js';

export const scopes = ['read', 'write', 'train', 'admin'] as const;
export type Scope = (typeof scopes)[number];

const scryptAsync = promisify(scrypt) as (secret: string, salt: Buffer, length: number) => Promise<Buffer>;
const keyPattern = /^ph_([a-z0-9]{12})_([A-Za-z0-9_-]{32,})$/;

export interface CreatedKey {
  id: number;
  name: string;
  scopes: Scope[];
  /** The whole key: returned once, never stored. */
  key: string;
}

export function parseScopes(values: readonly string[]): Scope[] {
  if (values.length === 0) throw new PolyheadError('BAD_USER_INPUT', `scopes: give at least one of ${scopes.join(', ')}`);
  for (const value of values) {
    if (!(scopes as readonly string[]).includes(value)) throw new PolyheadError('BAD_USER_INPUT', `scopes: unknown scope "${value}" (use ${scopes.join(', ')})`);
  }
  return [...new Set(values)] as Scope[];
}

export class ApiKeyService {
  constructor(private readonly prisma: PrismaClient) {}

  async create(name: string, requested: readonly string[]): Promise<CreatedKey> {
    if (!name.trim() || name.length > 100) throw new PolyheadError('BAD_USER_INPUT', 'name: 1 to 100 characters');
    const keyScopes = parseScopes(requested);
    const prefix = randomBytes(9).toString('base64url').toLowerCase().replace(/[^a-z0-9]/g, '0').slice(0, 12);
    const secret = randomBytes(32).toString('base64url');
    const salt = randomBytes(16);
    const hash = await scryptAsync(secret, salt, 32);
    const row = await this.prisma.apiKey.create({ data: { name, prefix, hash: hash.toString('hex'), salt: salt.toString('hex'), scopes: keyScopes } });
    return { id: row.id, name, scopes: keyScopes, key: `ph_${prefix}_${secret}` };
  }

  /** The key's scopes, or null when it is unknown, revoked or wrong. */
  async verify(key: string): Promise<Scope[] | null> {
    const match = keyPattern.exec(key);
    if (!match) return null;
    const row = await this.prisma.apiKey.findUnique({ where: { prefix: match[1]! } });
    if (!row || row.revokedAt) return null;
    const hash = await scryptAsync(match[2]!, Buffer.from(row.salt, 'hex'), 32);
    if (!timingSafeEqual(hash, Buffer.from(row.hash, 'hex'))) return null;
    void this.prisma.apiKey.update({ where: { id: row.id }, data: { lastUsedAt: new Date() } }).catch(() => {});
    return row.scopes as Scope[];
  }

  async revoke(id: number): Promise<boolean> {
    const { count } = await this.prisma.apiKey.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: new Date() } });
    return count > 0;
  }

  list() {
    return this.prisma.apiKey.findMany({ orderBy: { id: 'asc' }, select: { id: true, name: true, prefix: true, scopes: true, createdAt: true, revokedAt: true, lastUsedAt: true } });
  }
}
