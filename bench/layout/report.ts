import { TRANSPORTS } from '../lib/types';
import type { LayoutResults } from './run-layout';

const f = (value: number, digits = 3) => (Number.isFinite(value) ? value.toFixed(digits) : '—');

/** The markdown tables `npm run bench:layout` prints: writes per layout and transport, item sizes, reads. */
export function layoutTables(results: LayoutResults): string {
  const s = results.settings;
  const lines = [
    `**Counter layouts** (${s.profile}): ${s.rate} events/s for ${s.durationSec} s over ${s.keys} Zipf(${s.zipfS}) keys, per transport and layout`,
    '',
    '| transport | layout | events | write units / event | write requests / event | counter items | median B | max B | exact |',
    '|---|---|--:|--:|--:|--:|--:|--:|---|',
  ];
  for (const transport of TRANSPORTS) {
    const c = results.byTransport[transport];
    for (const run of [c.previous, c.hours]) {
      lines.push(
        `| ${transport} | ${run.layout} | ${run.events} | ${f(run.perEvent.writeUnits)} | ${f(run.perEvent.writeRequests)} | ${run.items.count} | ${run.items.medianBytes} | ${run.items.maxBytes} | ${run.exact.ok ? 'yes' : 'NO'} |`,
      );
    }
    lines.push(
      `| ${transport} | **hours / previous** | | **${f(c.ratio.writeUnits, 4)}** | **${f(c.ratio.writeRequests, 4)}** | | | | |`,
    );
  }
  const r = results.reads;
  lines.push(
    '',
    `**Reads**: the ${r.days}-day \`groupBy=key\` answer over ${r.keys} keys (whole-day counters: median ${r.items.medianBytes} B, max ${r.items.maxBytes} B)`,
    '',
    '| granularity | tz | counter reads | items | bytes | read units (engine) | read units (ceil 4 KB) | without hours | key list units | total |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|---|',
  );
  for (const a of r.answers) {
    lines.push(
      `| ${a.granularity} | ${a.tz} | ${a.counters.requests} | ${a.counters.items} | ${a.counters.bytes} | ${f(a.counters.engineUnits, 1)} | ${f(a.counters.clientUnits, 1)} | ${f(a.counters.clientUnitsWithoutHours, 1)} | ${f(a.keyList.engineUnits, 1)} | ${a.total === a.expectedTotal ? `${a.total} ✓` : `${a.total} ≠ ${a.expectedTotal}`} |`,
    );
  }
  return lines.join('\n');
}
