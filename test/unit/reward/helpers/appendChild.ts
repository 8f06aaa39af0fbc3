// Child process for the crash test: appends ratings forever, printing "ack <id>" after each durable append.
import { PreferenceStore } from '../../../../src/core/reward/store';
import { CHOICES } from '../../../../src/protocol';

const dir = process.argv[2];
const tag = process.argv[3] ?? 'c';
const store = PreferenceStore.open(dir);
let i = 0;
for (;;) {
  const r = store.append({
    id: `${tag}-${i}`, pairId: `p${i % 17}`, prompt: 'a red circle ' + 'x'.repeat(i % 300), left: `samples/p${i}/a.png`, right: `samples/p${i}/b.png`,
    choice: CHOICES[i % 4], rater: 'sim', sideOrder: i % 2 ? 'ab' : 'ba',
  });
  process.stdout.write(`ack ${r.id}\n`);
  i++;
}
