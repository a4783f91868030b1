#!/usr/bin/env node
// The `flotilla` command. Flotilla runs its TypeScript directly through tsx (nothing is
// compiled to disk), so this shim registers tsx and hands over to src/main.ts.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
