import { defineConfig } from 'prisma/config';

// Used by `prisma generate` only: the server applies migrations itself (src/registry/migrate.ts).
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://localhost:5432/polyhead' },
});
