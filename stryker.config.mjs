// Mutation testing (npm run mutate) of the modules where a bug hurts most: the send pipeline, the claim
// protocol, the notification log, the reminder plan, email rendering, Postmark error classification, the pacer, and
// duration and config parsing. The report goes to reports/mutation/index.html.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'jest',
  // Only the fast tests that cover these modules; none needs a Temporal server.
  jest: { projectType: 'custom', configFile: 'jest.mutate.config.js', enableFindRelatedTests: true },
  // No TypeScript checker by default: on this 2-core machine it made duration.ts's 23 mutants take 5 min 35 s
  // instead of 4 min 29 s (78 s of it type-checking the project before the first test), and it takes one of
  // the two slots from the test runners. Without it ts-jest runs a mutant that would not compile like any
  // other (duration.ts has 5 such; they count as killed). `npm run mutate -- --checkers typescript` turns it on.
  coverageAnalysis: 'perTest',
  // A loaded 2-core machine slows the database tests; a mutant counts as timed out only well past its normal time.
  timeoutMS: 10_000,
  concurrency: 2,
  mutate: [
    'activities/tokenExpiry.ts',
    // The one send pipeline and the fenced claim protocol it writes through, and the leases sized for it.
    'activities/sendEmail.ts',
    'src/db/claims.ts',
    'src/tokenExpiry/lease.ts',
    'src/db/notifications.ts',
    // The plan (the workflow's timers, replan merge and validation). The workflow itself runs inside a worker's
    // webpack bundle, which Stryker cannot instrument; the workflow tests on the time-skipping server guard it.
    'src/tokenExpiry/plan.ts',
    'src/email/reminderEmail.ts',
    'src/email/postmarkMailer.ts',
    'src/email/sendPacer.ts',
    'src/duration.ts',
    'src/config.ts',
  ],
  ignorePatterns: ['.tools', 'dist', '.data', 'bench/results', 'docs', 'reports', 'coverage'],
  reporters: ['html', 'clear-text', 'progress'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  thresholds: { high: 90, low: 85, break: null },
};
