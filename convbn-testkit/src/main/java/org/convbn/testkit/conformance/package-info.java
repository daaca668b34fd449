/**
 * What a backend must pass to be called correct: the grid of configurations, central finite differences and
 * the error measure. The project's own tests use them; a new backend's tests should too.
 */
package org.convbn.testkit.conformance;
