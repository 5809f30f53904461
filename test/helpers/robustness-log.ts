// Figures the robustness suites record for `npm run robustness`
// (test/helpers/robustness-report.ts writes them out): the security cases
// with the codes they were refused with, and the soak's figures.
import type { SoakResult } from '../soak/soak';

export const securityLog: Array<{ name: string; code: string }> = [];
export const soakLog: { soak?: SoakResult; workers?: SoakResult[]; disposed?: Record<string, number>; exitCode?: number | null } = {};
