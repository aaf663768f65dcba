// Boots Swagger UI on /api/docs over the OpenAPI document the page names. A file of its own,
// not an inline script, so the page stays under the console's Content-Security-Policy.
// No validator: Swagger UI's default sends the document to validator.swagger.io.
const root = document.getElementById('swagger-ui');
window.ui = SwaggerUIBundle({
  url: root.dataset.url,
  domNode: root,
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
  validatorUrl: null,
});
