// Child of the kill -9 test: concurrent writers append numbered records, printing each number once it is acknowledged.
import { openJournal } from "../../src/store/index.js";

const [dir, writersArg, compactEveryArg] = process.argv.slice(2);
const writers = Number(writersArg);
const compactEvery = Number(compactEveryArg);

const { journal, snapshot, records } = await openJournal(dir!);
let next = ((snapshot as { upTo: number } | undefined)?.upTo ?? 0) + records.length;
process.stdout.write(`open ${next}\n`);

async function writer(): Promise<never> {
  for (;;) {
    const n = next++;
    // Each writer takes its number and appends in one step, so every record below n is appended.
    if (n % compactEvery === 0) void journal.compact({ upTo: n });
    await journal.append({ n, pad: "x".repeat(n % 97) });
    process.stdout.write(`${n}\n`); // synchronous on a pipe (Linux), so printed means acknowledged first
  }
}

await Promise.all(Array.from({ length: writers }, writer));
