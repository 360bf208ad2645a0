import type { TestProject } from 'vitest/node';
import { startPostgres } from './helpers/postgres-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A PostgreSQL server every test file may create its own database on. */
    postgresUrl: string;
  }
}

/** One throw-away PostgreSQL cluster for the whole run (each test file makes its own database). */
export async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startPostgres();
  project.provide('postgresUrl', server.url);
  return () => server.stop();
}
