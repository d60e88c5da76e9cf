// PNG output for `sslsweep plot` and `report`: an SVG document rendered by
// librsvg onto a cairo image surface. The only file of the CLI that
// includes the GLib, librsvg and cairo headers.
//
// Thread contract: pure functions (librsvg handles are per call).

#ifndef SSLSWEEP_CLI_PNG_RENDER_H_
#define SSLSWEEP_CLI_PNG_RENDER_H_

#include <string>

#include "absl/status/statusor.h"

namespace sslsweep {

// The SVG as PNG bytes, its intrinsic size in pixels (the svg element's
// width and height, rounded up) times `scale`. InvalidArgument when librsvg
// cannot parse it or it has no size; Internal when cairo fails.
absl::StatusOr<std::string> RenderSvgToPng(const std::string& svg, double scale = 1.0);

}  // namespace sslsweep

#endif  // SSLSWEEP_CLI_PNG_RENDER_H_
