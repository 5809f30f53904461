// `download <name...>`: prefetch weights into the cache (for an offline
// machine later, or a Docker layer). Names expand to registry entries first,
// all of them checked before anything is fetched, so a typo costs nothing.
import { type Command, Option } from 'commander';
import { ARCHITECTURES, isArchitecture, type Architecture } from '../arch';
import { errorCode } from '../errors';
import { DEFAULT_SOURCE, downloadWeights, listWeights, looksLikeUrl, WEIGHTS_SOURCES } from '../hub';
import { fmtBytes, UsageError, withArchFlags, type ArchFlags } from './common';
import { printJsonLine } from './json';
import { downloadBar } from './progress';
import { cliState } from './state';

const NAME_HELP =
  `a registry key (see \`vgg-native weights\`), an architecture (${ARCHITECTURES[0]}, ...), ` +
  `a source (${WEIGHTS_SOURCES.join(', ')}, imagenet), 'all', or an http(s) URL`;

interface DownloadFlags extends ArchFlags {
  source?: string;
  json?: boolean;
}

/** Registry keys (or URLs) one name stands for. @throws UsageError for a name that is none of NAME_HELP */
export function expandName(name: string, flags: DownloadFlags): string[] {
  if (looksLikeUrl(name)) return [name];
  const entries = listWeights();
  if (name === 'all') return entries.map((e) => e.key);
  if (name === 'imagenet' || (WEIGHTS_SOURCES as readonly string[]).includes(name)) {
    const source = name === 'imagenet' ? DEFAULT_SOURCE : name;
    return entries.filter((e) => e.source === source && (!flags.arch || e.arch === flags.arch)).map((e) => e.key);
  }
  if (isArchitecture(name)) return [archEntry(name, flags.source ?? DEFAULT_SOURCE)];
  if (entries.some((e) => e.key === name)) return [name];
  throw new UsageError(`unknown weights '${name}': expected ${NAME_HELP}`);
}

function archEntry(arch: Architecture, source: string): string {
  const key = `${arch}.${source}`;
  if (listWeights().some((e) => e.key === key)) return key;
  throw new UsageError(`${source} publishes no ${arch} (see \`vgg-native weights --model ${arch}\`)`);
}

/** Downloads one key or URL, printing its line; false when it failed (reported already). */
async function fetchOne(name: string, flags: DownloadFlags): Promise<boolean> {
  const bar = downloadBar(!cliState.quiet);
  try {
    const r = await downloadWeights(name, { onProgress: bar.update });
    bar.stop();
    if (flags.json) printJsonLine({ name, key: r.entry?.key ?? null, url: r.url, file: r.file, bytes: r.bytes, downloaded: r.downloaded });
    else console.log(`${name}: ${r.file} (${r.downloaded ? 'downloaded' : 'cached'}, ${fmtBytes(r.bytes)})`);
    return true;
  } catch (e) {
    bar.stop();
    const message = (e as Error)?.message ?? String(e);
    if (flags.json) printJsonLine({ name, error: message, code: errorCode(e) ?? null });
    else process.stderr.write(`vgg-native: ${message.split('\n').join('; ')}\n`);
    return false;
  }
}

export function registerDownload(program: Command): void {
  withArchFlags(
    program
      .command('download')
      .description('download weights into the cache (VGG_NATIVE_HOME, else $XDG_CACHE_HOME/vgg-native), verified, resumable')
      .argument('<names...>', NAME_HELP),
    'with a source name: only this architecture',
  )
    .addOption(new Option('-s, --source <source>', 'source for architecture names').choices([...WEIGHTS_SOURCES]))
    .option('--json', 'one JSON line per file: {"name", "key", "url", "file", "bytes", "downloaded"} or {"name", "error", "code"}')
    .action(async (names: string[], flags: DownloadFlags) => {
      const targets = [...new Set(names.flatMap((n) => expandName(n, flags)))];
      let failed = 0;
      for (const t of targets) if (!(await fetchOne(t, flags))) failed++;
      if (failed > 0) {
        if (!flags.json && targets.length > 1) process.stderr.write(`vgg-native: ${failed} of ${targets.length} downloads failed\n`);
        process.exitCode = 1;
      }
    });
}
