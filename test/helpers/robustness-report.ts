// A mocha root-hook plugin for `npm run robustness`: after the suites ran,
// writes the security cases with their codes and the soak figures (exported
// by test/security.test.ts and test/soak.test.ts in ./robustness-log) to $ROBUSTNESS_OUT.
import * as fs from 'node:fs';
import { securityLog, soakLog } from './robustness-log';

export const mochaHooks = {
  afterAll(): void {
    const out = process.env.ROBUSTNESS_OUT;
    if (out) fs.writeFileSync(out, JSON.stringify({ security: securityLog, soak: soakLog }, null, 1));
  },
};
