// The fast tests that cover the modules `npm run mutate` mutates: no Temporal server, so each mutant
// runs in seconds (workflow code bundled for a worker is not instrumented by Stryker anyway).
const base = require('./jest.config');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testMatch: [
    '<rootDir>/test/sendReminder.activity.test.ts',
    '<rootDir>/test/sendReminder.webhook.test.ts',
    '<rootDir>/test/exactlyOnce.races.test.ts',
    '<rootDir>/test/lease.test.ts',
    '<rootDir>/test/claims.test.ts',
    '<rootDir>/test/claims.property.test.ts',
    '<rootDir>/test/planReminders.test.ts',
    '<rootDir>/test/reminderEmail.test.ts',
    '<rootDir>/test/postmarkMailer.test.ts',
    '<rootDir>/test/sendPacer.test.ts',
    '<rootDir>/test/config.test.ts',
    '<rootDir>/test/duration.test.ts',
  ],
};
