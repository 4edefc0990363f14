// Starts Swagger UI on the document this service serves. A file of its own (not an inline
// script) so the page's Content-Security-Policy can be `script-src 'self'`.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    // Relative to the page (/docs): /openapi.json, or <prefix>/openapi.json behind a proxy.
    url: "openapi.json",
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    displayOperationId: true,
    displayRequestDuration: true,
    docExpansion: "list",
    filter: true,
    // No "valid" badge: it is an image fetched from validator.swagger.io.
    validatorUrl: null,
    // Never take another document from the query string (?url=...).
    queryConfigEnabled: false,
    persistAuthorization: false,
  });
});
