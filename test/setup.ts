import { DefaultLogger, Runtime } from '@temporalio/worker';

// The SDK logs every worker state change at INFO; tests only want to hear about trouble.
Runtime.install({ logger: new DefaultLogger('WARN') });
