/**
 * A real S3-compatible server for tests: s3rver (npm, a Node implementation of the S3 REST API
 * storing objects in a directory) in a child process on 127.0.0.1, so a test can kill it with -9
 * mid-upload and start it again on the same directory and port. Signatures are not checked (the access key must be S3RVER)
 * (`allowMismatchedSignatures`), so tests can use canary credentials.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

const MAIN = `
const S3rver = require('s3rver');
const [port, directory, bucket] = process.argv.slice(1);
new S3rver({
  address: '127.0.0.1', port: Number(port), directory, silent: true,
  allowMismatchedSignatures: true, configureBuckets: [{ name: bucket }],
}).run().then(
  (a) => console.log('s3rver listening on ' + a.port),
  (e) => { console.error(e); process.exit(1); },
);`;

export interface S3Server {
  /** http://127.0.0.1:port */
  endpoint: string;
  bucket: string;
  directory: string;
  /** The environment an openbatch process needs to keep its files under `s3://bucket/prefix`. */
  env(prefix: string): Record<string, string>;
  /** kill -9 (connections drop mid-request). */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory (objects written before are still there). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Credentials s3rver ignores; a test can look for them in logs and error bodies. */
export const S3_TEST_CREDENTIALS = {
  AWS_ACCESS_KEY_ID: 'S3RVER', // the one key s3rver knows; its secret is not checked,
  AWS_SECRET_ACCESS_KEY: 's3-secret-canary-5d1f0e7a9b2c',
};

export async function startS3Server(bucket = 'openbatch-test'): Promise<S3Server> {
  const directory = mkdtempSync(join(tmpdir(), 'openbatch-s3rver-'));
  let child = await launch(0, directory, bucket);
  const endpoint = `http://127.0.0.1:${child.port}`;
  const kill = async (): Promise<void> => {
    if (child.process.exitCode !== null || child.process.signalCode !== null) return;
    const exited = new Promise((resolve) => child.process.once('exit', resolve));
    child.process.kill('SIGKILL');
    await exited;
  };
  return {
    endpoint,
    bucket,
    directory,
    env: (prefix) => ({
      ...S3_TEST_CREDENTIALS,
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REGION: 'us-east-1',
      OPENBATCH_BLOB_STORE: `s3://${bucket}/${prefix}`,
      OPENBATCH_S3_FORCE_PATH_STYLE: '1',
    }),
    kill,
    restart: async () => {
      await kill();
      child = await launch(child.port, directory, bucket);
    },
    stop: async () => {
      await kill();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

async function launch(
  port: number,
  directory: string,
  bucket: string,
): Promise<{ process: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['-e', MAIN, String(port), directory, bucket], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const listening = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`s3rver did not start:\n${out}`)), 20_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /s3rver listening on (\d+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited:\n${out}`));
    });
  });
  return { process: child, port: listening };
}

/** A pass-through HTTP proxy in front of an S3 server that records each request's method and URL. */
export interface RecordingProxy {
  endpoint: string;
  /** `METHOD /bucket/key?query`, in arrival order. */
  requests: string[];
  close(): Promise<void>;
}

export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const requests: string[] = [];
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const out = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
