// Several instances in one namespace, on the production-shaped cluster (test/helpers/instancesSuite.ts):
// overlapping token ids, a worker each, every user gets their own emails; a replan, a sweep and a revoke in
// one leave every workflow of the other as it was.
import { instancesSuite } from './helpers/instancesSuite';

instancesSuite('cluster');
