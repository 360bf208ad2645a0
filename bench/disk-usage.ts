/** Sizes of what the server keeps on disk, measured from outside: every file under its data dir. */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

// SQLite's main file and its write-ahead log under any of the usual names; -shm is an index of
// the WAL that SQLite rebuilds at will, so it counts toward the directory but not the database.
const DATABASE_FILE = /\.(db|sqlite|sqlite3)(-wal)?$/;

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

const sizeOf = (path: string): number => statSync(path, { throwIfNoEntry: false })?.size ?? 0;

/** Bytes of all files under `dir`, recursively. */
export function directoryBytes(dir: string): number {
  return filesUnder(dir).reduce((sum, path) => sum + sizeOf(path), 0);
}

/** Bytes of the SQLite databases and their WAL files under `dir`. */
export function databaseBytes(dir: string): number {
  return filesUnder(dir)
    .filter((path) => DATABASE_FILE.test(path))
    .reduce((sum, path) => sum + sizeOf(path), 0);
}
