#!/usr/bin/env node
// The sluice command: runs the compiled CLI (npm run build makes dist/). A command may set
// process.exitCode itself (e.g. `agent status` when the agent is not ready); main()'s own
// failure code wins over it.
import { main } from '../dist/cli/main.js';

process.exitCode = (await main(process.argv)) || process.exitCode;
