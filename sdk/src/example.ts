/**
 * The SDK README's example, kept as code so a test runs it: create a machine, run a
 * command with its output streamed, write and read a file, destroy the machine.
 * Run: HANGAR_URL=http://127.0.0.1:8080 HANGAR_API_KEY=… node dist/sdk/src/example.js
 */
import { pathToFileURL } from 'node:url';
import { HangarClient } from './index.js';

export async function example(baseUrl: string, apiKey: string, print: (line: string) => void = console.log): Promise<void> {
  const hangar = new HangarClient({ baseUrl, apiKey });
  const machine = await hangar.createMachine({ template: 'base', config: { memory_mb: 256 } });
  try {
    print(`machine ${machine.id} is ${machine.status}`);
    for await (const event of hangar.execStream(machine.id, { cmd: 'for i in 1 2 3; do echo tick $i; done' })) {
      if (event.type === 'exit') print(`exit code ${event.exitCode}`);
      else print(`${event.type}: ${event.data.trimEnd()}`);
    }
    await hangar.writeFile(machine.id, '/root/notes.txt', 'written by the SDK\n');
    print(new TextDecoder().decode(await hangar.readFile(machine.id, '/root/notes.txt')).trimEnd());
  } finally {
    await hangar.deleteMachine(machine.id);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await example(process.env.HANGAR_URL ?? 'http://127.0.0.1:8080', process.env.HANGAR_API_KEY ?? '');
}
