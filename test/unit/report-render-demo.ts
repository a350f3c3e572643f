// Writes the synthetic run's report to /tmp/report.html (for looking at it in a browser).
import { writeFileSync } from 'node:fs';
import { analyzeRun } from '../../src/analysis/analyze-run.ts';
import { renderReportHtml } from '../../src/report/report-html.ts';
import { formatSummaryTable } from '../../src/report/table.ts';
import { syntheticRun } from './analysis-synthetic-run.ts';

const run = syntheticRun();
const results = analyzeRun(run);
const html = renderReportHtml(results, run.samples);
writeFileSync(process.argv[2] ?? '/tmp/report.html', html);
process.stdout.write(formatSummaryTable(results));
process.stdout.write(`${html.length} bytes\n`);
