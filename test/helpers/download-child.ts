// Run as a child process by test/download.test.ts: downloads one name or URL
// with the environment it was given and prints the result as JSON, so two
// processes can race for the same cache file.
import { downloadWeights } from '../../src/hub';

downloadWeights(process.argv[2]).then(
  (r) => process.stdout.write(JSON.stringify({ file: r.file, downloaded: r.downloaded, bytes: r.bytes })),
  (e: Error & { code?: string }) => {
    process.stderr.write(`${e.code}: ${e.message}\n`);
    process.exitCode = 1;
  },
);
