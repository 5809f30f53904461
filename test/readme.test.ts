// The README's Layout names real paths: every one is in the repository, and
// every folder of src/ and every top-level folder is named.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');

function layoutPaths(): string[] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Layout\n'));
  const block = /```\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  return block
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.split(/\s+/)[0]);
}

describe('README Layout', () => {
  const tracked = execFileSync('git', ['ls-files', '-co', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
  const named = layoutPaths();

  it('names only paths the repository has', () => {
    assert.ok(named.length > 20, `Layout block parsed to ${named.length} paths`);
    const missing = named.filter((p) => (p.endsWith('/') ? !tracked.some((t) => t.startsWith(p)) : !tracked.includes(p)));
    assert.deepEqual(missing, []);
  });

  it('names every folder of src/ and every top-level folder', () => {
    const folders = new Set(
      tracked.flatMap((t) => {
        const parts = t.split('/');
        const out = parts.length > 1 && !parts[0].startsWith('.') ? [`${parts[0]}/`] : [];
        if (parts[0] === 'src' && parts.length > 2) out.push(`src/${parts[1]}/`);
        return out;
      }),
    );
    const unnamed = [...folders].filter((f) => !named.some((p) => p === f || p.startsWith(f)));
    assert.deepEqual(unnamed, []);
  });
});
