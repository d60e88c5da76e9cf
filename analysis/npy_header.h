// The header of a .npy file, the Python dict literal that numpy writes after
// the preamble ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"),
// parsed and checked against what ReadNpy can read: exactly the keys descr,
// fortran_order and shape; a supported dtype; C order; a shape whose data
// fits in 2^63 bytes. Only the literal syntax a header can hold is parsed
// (dicts, tuples, lists, strings, integers, True, False, None), as Python's
// ast.literal_eval would parse it.
//
// Thread contract: the function is pure and may be called concurrently; the
// NpyType a header points to is static and never changes.

#ifndef SSLSWEEP_ANALYSIS_NPY_HEADER_H_
#define SSLSWEEP_ANALYSIS_NPY_HEADER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace sslsweep {

// A dtype that ReadNpy supports, and how its bytes become a tensor.
struct NpyType {
  enum class Conversion {
    kNone,     // copied as is into a tensor of `scalar_type`
    kBool,     // bytes, any nonzero byte is true
    kUnsigned, // uint16/32/64 widened to int64, refused above INT64_MAX
  };
  const char* descr;
  size_t item_size;
  torch::ScalarType scalar_type;  // of the resulting tensor
  Conversion conversion;
};

// What a header says about the array.
struct NpyHeader {
  const NpyType* type = nullptr;  // never null in a parsed header
  std::vector<int64_t> shape;     // every dimension >= 0
  int64_t data_bytes = 0;         // the size of the array's data
};

// Parses `text`, the header of the .npy file `path` (the HEADER_LEN bytes
// after the preamble, padding included), and returns what it says. Throws
// c10::Error with "<path>: <what is wrong>" (the header quoted where that
// helps) when the text is not such a dict literal, or it describes an array
// ReadNpy cannot read: a pickle, a structured or big-endian dtype, Fortran
// order, a negative dimension, data beyond 2^63 bytes. Where several fields
// are wrong, the first of descr, fortran_order and shape is reported.
NpyHeader ParseNpyHeader(const std::string& path, const std::string& text);

}  // namespace sslsweep

#endif  // SSLSWEEP_ANALYSIS_NPY_HEADER_H_
