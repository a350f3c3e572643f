#!/usr/bin/env node
// Entry point for `npx failwatch`: runs the TypeScript CLI with Node 24's type stripping.
import '../src/cli/main.ts';
