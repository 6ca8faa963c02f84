export { tokenExpiryWorkflow } from './tokenExpiry';
export { tokenExpirySweepWorkflow } from './sweep';
