// Several instances in one namespace, on the dev server (test/helpers/instancesSuite.ts).
import { instancesSuite } from './helpers/instancesSuite';

instancesSuite('dev');
