// Package functions is gcpsim's Cloud Functions v2 API
// (google.cloud.functions.v2.FunctionService over gRPC) and its signed-URL
// style source upload. Like Google, creating a function "builds" the
// uploaded source (here: checks it is a zip) and creates the function's
// underlying Cloud Run service, whose image is a stub until a client sets a
// real one through the Cloud Run API (DESIGN.md decision 2).
package functions
