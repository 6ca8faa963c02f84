export { tokenExpiryWorkflow } from './tokenExpiry';
