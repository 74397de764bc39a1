export { Filters, invalidFilter } from './filters.js';
