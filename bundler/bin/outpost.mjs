#!/usr/bin/env node
// `npx outpost …`: the CLI is TypeScript source (like the rest of the workspace); tsx's loader
// is registered in this process so no build step is needed and signals and exit codes stay ours.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
