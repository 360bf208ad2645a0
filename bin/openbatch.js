#!/usr/bin/env node
// Runs the TypeScript sources through tsx, so the command works from a fresh checkout after
// `npm install` with no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
