// The program's entry: hands the arguments to the command line (src/cli).
import { main } from "./cli/index.js";

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Let pending writes flush; anything still holding the loop after a finished command is a bug, so exit.
    setImmediate(() => process.exit(code));
  },
  (err: unknown) => {
    process.stderr.write(`stevedore: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
