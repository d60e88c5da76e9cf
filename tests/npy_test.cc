// Tests of analysis/npy: round trips of every writable dtype and shape,
// hand-built files of each format version, one test per malformation (the
// message names the file and what is wrong), and interoperation with numpy
// itself when /usr/bin/python3 has it.

#include "analysis/npy.h"

#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace sslsweep {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// A .npy file's bytes: magic, version, header length (2 bytes for 1.0, else
// 4), `header` unpadded, then `data`.
std::string NpyBytes(int major, const std::string& header, const std::string& data) {
  std::string bytes = std::string("\x93NUMPY", 6);
  bytes += static_cast<char>(major);
  bytes += static_cast<char>(0);
  const size_t length = header.size();
  const int width = major == 1 ? 2 : 4;
  for (int i = 0; i < width; ++i) bytes += static_cast<char>((length >> (8 * i)) & 0xff);
  return bytes + header + data;
}

std::string Header(const std::string& descr, const std::string& shape,
                   const std::string& fortran = "False") {
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape +
         ", }\n";
}

template <typename T>
std::string Bytes(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// The message of the c10::Error that ReadNpy(path) throws; "" if none.
std::string ReadError(const std::string& path) {
  try {
    ReadNpy(path);
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  return "";
}

class NpyTest : public ::testing::Test {
 protected:
  // Writes `bytes` to a file of the test's temp dir and returns its path.
  std::string File(const std::string& bytes, const std::string& name = "array.npy") {
    return WriteFile(dir_ + "/" + name, bytes);
  }

  const std::string dir_ = FreshTempDir("npy");
};

// -- Round trips ------------------------------------------------------------

TEST_F(NpyTest, RoundTripsEveryWritableDtypeAndShape) {
  const std::vector<torch::ScalarType> dtypes = {torch::kFloat32, torch::kFloat64,
                                                 torch::kInt32,   torch::kInt64,
                                                 torch::kUInt8,   torch::kBool};
  const std::vector<std::vector<int64_t>> shapes = {{}, {0}, {5}, {2, 3}, {3, 0, 2}, {2, 3, 4}};
  int index = 0;
  for (torch::ScalarType dtype : dtypes) {
    for (const std::vector<int64_t>& shape : shapes) {
      SCOPED_TRACE(::testing::Message() << dtype << " " << c10::IntArrayRef(shape));
      int64_t numel = 1;
      for (int64_t dim : shape) numel *= dim;
      torch::Tensor values = (torch::arange(numel, torch::kFloat64) * 1.25 - 3).reshape(shape);
      if (dtype == torch::kBool) values = values.gt(0);
      if (dtype == torch::kUInt8) values = values.abs();
      values = values.to(dtype);
      const std::string path = dir_ + "/" + std::to_string(index++) + ".npy";
      WriteNpy(path, values);
      const torch::Tensor read = ReadNpy(path);
      EXPECT_EQ(read.scalar_type(), dtype);
      EXPECT_EQ(read.sizes(), values.sizes());
      EXPECT_TRUE(torch::equal(read, values));
    }
  }
}

TEST_F(NpyTest, WritesNonContiguousTensorsInLogicalOrder) {
  const torch::Tensor values = torch::arange(6, torch::kFloat32).reshape({2, 3}).t();
  WriteNpy(dir_ + "/t.npy", values);
  EXPECT_TRUE(torch::equal(ReadNpy(dir_ + "/t.npy"), values.contiguous()));
}

TEST_F(NpyTest, WrittenFileIsVersion1WithAlignedHeader) {
  WriteNpy(dir_ + "/a.npy", torch::zeros({2, 3}, torch::kFloat32));
  const std::string bytes = ReadFile(dir_ + "/a.npy");
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 6), std::string("\x93NUMPY", 6));
  EXPECT_EQ(bytes[6], 1);
  EXPECT_EQ(bytes[7], 0);
  const size_t header_length =
      static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9]) << 8;
  EXPECT_EQ((10 + header_length) % 64, 0u);
  EXPECT_EQ(bytes.size(), 10 + header_length + 6 * 4);
  const std::string header = bytes.substr(10, header_length);
  EXPECT_EQ(header.back(), '\n');
  EXPECT_THAT(header,
              HasSubstr("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"));
}

TEST_F(NpyTest, WritesOneDimensionalShapeAsPythonTuple) {
  WriteNpy(dir_ + "/v.npy", torch::zeros({4}, torch::kInt64));
  EXPECT_THAT(ReadFile(dir_ + "/v.npy"), HasSubstr("'shape': (4,)"));
  WriteNpy(dir_ + "/s.npy", torch::tensor(2.5));
  EXPECT_THAT(ReadFile(dir_ + "/s.npy"), HasSubstr("'shape': ()"));
}

TEST_F(NpyTest, RefusesToWriteUnsupportedDtype) {
  const std::string path = dir_ + "/short.npy";
  try {
    WriteNpy(path, torch::zeros({2}, torch::kInt16));
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_THAT(e.what_without_backtrace(), AllOf(HasSubstr(path), HasSubstr("cannot write dtype")));
  }
}

TEST_F(NpyTest, ReportsUnwritablePath) {
  const std::string path = dir_ + "/missing/a.npy";
  try {
    WriteNpy(path, torch::zeros({2}));
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_THAT(e.what_without_backtrace(),
                AllOf(HasSubstr(path), HasSubstr("cannot open for writing")));
  }
}

TEST_F(NpyTest, ReportsFailedWrite) {
  if (access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no writable /dev/full";
  try {
    WriteNpy("/dev/full", torch::zeros({1 << 16}));
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_THAT(e.what_without_backtrace(),
                AllOf(HasSubstr("/dev/full: cannot write"), HasSubstr("No space left")));
  }
  EXPECT_EQ(access("/dev/full", F_OK), 0);
}

// -- Hand-built files ---------------------------------------------------------

TEST_F(NpyTest, ReadsVersion1Header) {
  const torch::Tensor t =
      ReadNpy(File(NpyBytes(1, Header("<i2", "(3,)"), Bytes<int16_t>({1, -2, 300}))));
  EXPECT_EQ(t.scalar_type(), torch::kInt16);
  EXPECT_TRUE(torch::equal(t, torch::tensor({1, -2, 300}, torch::kInt16)));
}

TEST_F(NpyTest, ReadsVersion2Header) {
  const torch::Tensor t =
      ReadNpy(File(NpyBytes(2, Header("<f8", "(2, 1)"), Bytes<double>({0.5, -1.5}))));
  EXPECT_EQ(t.scalar_type(), torch::kFloat64);
  EXPECT_TRUE(torch::equal(t, torch::tensor({0.5, -1.5}, torch::kFloat64).reshape({2, 1})));
}

TEST_F(NpyTest, ReadsVersion3Header) {
  const torch::Tensor t =
      ReadNpy(File(NpyBytes(3, Header("<f4", "(1, 2)"), Bytes<float>({1.0f, 2.0f}))));
  EXPECT_EQ(t.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(t, torch::tensor({1.0f, 2.0f}).reshape({1, 2})));
}

TEST_F(NpyTest, AcceptsAnyKeyOrderQuotingAndSpacing) {
  const std::string header =
      "{ \"shape\" : ( 2 , ) ,'fortran_order':False,  \"descr\":\"<i4\"}";
  const torch::Tensor t = ReadNpy(File(NpyBytes(1, header, Bytes<int32_t>({7, 8}))));
  EXPECT_TRUE(torch::equal(t, torch::tensor({7, 8}, torch::kInt32)));
}

TEST_F(NpyTest, AcceptsPython2LongSuffix) {
  const torch::Tensor t =
      ReadNpy(File(NpyBytes(1, Header("<i8", "(1L, 2L)"), Bytes<int64_t>({3, 4}))));
  EXPECT_EQ(t.sizes(), c10::IntArrayRef({1, 2}));
}

TEST_F(NpyTest, ReadsZeroDimensionalAndEmptyArrays) {
  const torch::Tensor scalar = ReadNpy(File(NpyBytes(1, Header("<f8", "()"), Bytes<double>({4.5})), "s.npy"));
  EXPECT_EQ(scalar.dim(), 0);
  EXPECT_EQ(scalar.item<double>(), 4.5);
  const torch::Tensor empty = ReadNpy(File(NpyBytes(1, Header("<f4", "(0, 7)"), ""), "e.npy"));
  EXPECT_EQ(empty.sizes(), c10::IntArrayRef({0, 7}));
}

TEST_F(NpyTest, ReadsEachIntegerAndBoolDtype) {
  struct Case {
    std::string descr;
    std::string data;
    torch::Tensor expected;
  };
  const std::vector<Case> cases = {
      {"|i1", Bytes<int8_t>({-3, 4}), torch::tensor({-3, 4}, torch::kInt8)},
      {"<i2", Bytes<int16_t>({-300, 4}), torch::tensor({-300, 4}, torch::kInt16)},
      {"<i4", Bytes<int32_t>({-70000, 4}), torch::tensor({-70000, 4}, torch::kInt32)},
      {"<i8", Bytes<int64_t>({-(int64_t{1} << 40), 4}),
       torch::tensor({-(int64_t{1} << 40), int64_t{4}}, torch::kInt64)},
      {"|u1", Bytes<uint8_t>({255, 4}), torch::tensor({255, 4}, torch::kUInt8)},
      {"<u2", Bytes<uint16_t>({65535, 4}), torch::tensor({65535, 4}, torch::kInt64)},
      {"<u4", Bytes<uint32_t>({4294967295u, 4}),
       torch::tensor({int64_t{4294967295}, int64_t{4}}, torch::kInt64)},
      {"<u8", Bytes<uint64_t>({uint64_t{1} << 62, 4}),
       torch::tensor({int64_t{1} << 62, int64_t{4}}, torch::kInt64)},
      // numpy's bools are bytes; any nonzero byte is true.
      {"|b1", Bytes<uint8_t>({2, 0}), torch::tensor({true, false}, torch::kBool)},
  };
  int index = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.descr);
    const torch::Tensor t = ReadNpy(File(NpyBytes(1, Header(c.descr, "(2,)"), c.data),
                                         std::to_string(index++) + ".npy"));
    EXPECT_EQ(t.scalar_type(), c.expected.scalar_type());
    EXPECT_TRUE(torch::equal(t, c.expected)) << t;
  }
}

// -- Malformed files: each message names the file and what is wrong ---------

struct Malformation {
  std::string name;
  std::string bytes;
  std::string phrase;
};

std::vector<Malformation> Malformations() {
  const std::string f4x3 = Bytes<float>({1, 2, 3});
  return {
      {"Empty", "", "is empty"},
      {"WrongMagic", "PK\x03\x04 this is a zip file", "not a .npy file"},
      {"TruncatedMagic", std::string("\x93NUM", 4), "ends inside the .npy preamble"},
      {"TruncatedPreamble", std::string("\x93NUMPY\x01\x00\x10", 9),
       "ends inside the .npy preamble"},
      {"TruncatedVersion2Preamble", std::string("\x93NUMPY\x02\x00\x10\x00", 10),
       "ends inside the .npy preamble"},
      {"UnknownVersion", NpyBytes(4, Header("<f4", "(3,)"), f4x3),
       "unsupported .npy format version 4.0"},
      {"UnknownMinorVersion",
       [&] {
         std::string b = NpyBytes(1, Header("<f4", "(3,)"), f4x3);
         b[7] = 1;
         return b;
       }(),
       "unsupported .npy format version 1.1"},
      {"TruncatedHeader", NpyBytes(1, Header("<f4", "(3,)"), "").substr(0, 30),
       "ends inside the header"},
      {"HeaderNotADict", NpyBytes(1, "[1, 2, 3]\n", ""), "header is not a Python dict literal"},
      {"HeaderUnclosed", NpyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)\n",
                                  f4x3),
       "header is not a Python dict literal"},
      {"HeaderGarbage", NpyBytes(1, "{'descr': <f4}\n", f4x3),
       "header is not a Python dict literal"},
      {"HeaderUnterminatedString", NpyBytes(1, "{'descr: '<f4'}", f4x3),
       "header is not a Python dict literal"},
      {"HeaderTrailingText", NpyBytes(1, Header("<f4", "(3,)") + "x", f4x3),
       "header is not a Python dict literal"},
      {"MissingShape", NpyBytes(1, "{'descr': '<f4', 'fortran_order': False}", f4x3),
       "lacks the key 'shape'"},
      {"ExtraKey",
       NpyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1}", f4x3),
       "unexpected key 'x'"},
      {"DuplicateKey",
       NpyBytes(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}",
                f4x3),
       "key 'descr' twice"},
      {"Complex", NpyBytes(1, Header("<c8", "(3,)"), f4x3 + f4x3),
       "unsupported dtype '<c8'"},
      {"Float16", NpyBytes(1, Header("<f2", "(3,)"), "123456"), "unsupported dtype '<f2'"},
      {"BigEndian", NpyBytes(1, Header(">f4", "(3,)"), f4x3), "big-endian"},
      {"Pickle", NpyBytes(1, Header("|O", "(3,)"), f4x3), "pickle"},
      {"Structured",
       NpyBytes(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,)}", f4x3),
       "structured dtypes"},
      {"DescrNotString", NpyBytes(1, Header("x", "(3,)").replace(10, 3, "4"), f4x3),
       "descr is not a dtype string"},
      {"FortranOrder", NpyBytes(1, Header("<f4", "(3,)", "True"), f4x3), "fortran_order True"},
      {"FortranOrderNotBool", NpyBytes(1, Header("<f4", "(3,)", "1"), f4x3),
       "fortran_order is not True or False"},
      {"ShapeNotTuple", NpyBytes(1, Header("<f4", "(3)"), f4x3), "shape is not a tuple"},
      {"ShapeOfStrings", NpyBytes(1, Header("<f4", "('3',)"), f4x3), "shape is not a tuple"},
      {"NegativeDimension", NpyBytes(1, Header("<f4", "(3, -1)"), f4x3),
       "shape (3, -1) has a negative dimension"},
      {"HugeNegativeDimension", NpyBytes(1, Header("<f4", "(-99999999999999999999,)"), f4x3),
       "has a negative dimension"},
      {"DimensionBeyondInt64", NpyBytes(1, Header("<f4", "(99999999999999999999,)"), f4x3),
       "beyond the int64 range"},
      {"ShapeTooLarge", NpyBytes(1, Header("<f4", "(4611686018427387904, 4)"), f4x3),
       "is too large"},
      {"ShapeProductOverflows",
       NpyBytes(1, Header("|u1", "(4294967296, 4294967296)"), f4x3), "is too large"},
      {"DataTooShort", NpyBytes(1, Header("<f4", "(3,)"), f4x3.substr(0, 8)),
       "data ends after 8 of 12 bytes"},
      {"TrailingBytes", NpyBytes(1, Header("<f4", "(3,)"), f4x3 + "xyz"),
       "3 unexpected bytes after the array's 12 bytes"},
      {"UInt64AboveInt64", NpyBytes(1, Header("<u8", "(1,)"), Bytes<uint64_t>({~uint64_t{0}})),
       "above the int64 maximum"},
  };
}

class NpyMalformationTest : public ::testing::TestWithParam<Malformation> {};

TEST_P(NpyMalformationTest, MessageNamesFileAndProblem) {
  const std::string path = FreshTempDir("bad") + "/" + GetParam().name + ".npy";
  WriteFile(path, GetParam().bytes);
  const std::string error = ReadError(path);
  EXPECT_THAT(error, AllOf(HasSubstr(path + ": "), HasSubstr(GetParam().phrase)));
}

INSTANTIATE_TEST_SUITE_P(All, NpyMalformationTest, ::testing::ValuesIn(Malformations()),
                         [](const auto& info) { return info.param.name; });

TEST_F(NpyTest, ReportsMissingFile) {
  const std::string path = dir_ + "/absent.npy";
  EXPECT_THAT(ReadError(path), AllOf(HasSubstr(path + ": cannot open"),
                                     HasSubstr("No such file")));
}

TEST_F(NpyTest, ReportsDirectory) {
  EXPECT_THAT(ReadError(dir_), HasSubstr(dir_ + ": is a directory"));
}

// -- numpy itself -------------------------------------------------------------

constexpr const char* kPython = "/usr/bin/python3";

bool HaveNumpy() {
  const std::string command = std::string(kPython) + " -c 'import numpy' >/dev/null 2>&1";
  return std::system(command.c_str()) == 0;
}

// Runs a Python program (saved beside the arrays, so no shell quoting) with
// `dir` as its argument; returns true when it exits with 0.
bool RunPython(const std::string& program, const std::string& dir) {
  const std::string script = WriteFile(dir + "/program.py", program);
  const std::string command = std::string(kPython) + " '" + script + "' '" + dir + "'";
  return std::system(command.c_str()) == 0;
}

TEST_F(NpyTest, ReadsFilesWrittenByNumpy) {
  if (!HaveNumpy()) GTEST_SKIP() << kPython << " with numpy is not available";
  const std::string program =
      "import sys, numpy as np\n"
      "from numpy.lib import format as fmt\n"
      "d = sys.argv[1]\n"
      "a = np.arange(12, dtype=np.float32).reshape(3, 4) / 4\n"
      "np.save(d + '/f4.npy', a)\n"
      "np.save(d + '/f8.npy', a.astype(np.float64) - 1)\n"
      "np.save(d + '/i8.npy', np.arange(5, dtype=np.int64) - 2)\n"
      "np.save(d + '/u2.npy', np.array([0, 65535], dtype=np.uint16))\n"
      "np.save(d + '/b1.npy', np.array([True, False, True]))\n"
      "np.save(d + '/i1.npy', np.array([[-128], [127]], dtype=np.int8))\n"
      "np.save(d + '/scalar.npy', np.float64(2.5))\n"
      "np.save(d + '/empty.npy', np.zeros((0, 3), dtype=np.float32))\n"
      "np.save(d + '/fortran.npy', np.asfortranarray(a))\n"
      "np.save(d + '/big.npy', a.astype('>f4'))\n"
      "for v in [(2, 0), (3, 0)]:\n"
      "    with open(d + '/v%d.npy' % v[0], 'wb') as f:\n"
      "        fmt.write_array(f, a, version=v)\n";
  ASSERT_TRUE(RunPython(program, dir_));

  const torch::Tensor a = torch::arange(12, torch::kFloat32).reshape({3, 4}) / 4;
  EXPECT_TRUE(torch::equal(ReadNpy(dir_ + "/f4.npy"), a));
  EXPECT_TRUE(torch::equal(ReadNpy(dir_ + "/f8.npy"), a.to(torch::kFloat64) - 1));
  EXPECT_TRUE(torch::equal(ReadNpy(dir_ + "/i8.npy"), torch::arange(5, torch::kInt64) - 2));
  EXPECT_TRUE(torch::equal(ReadNpy(dir_ + "/u2.npy"), torch::tensor({0, 65535}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(ReadNpy(dir_ + "/b1.npy"), torch::tensor({true, false, true})));
  EXPECT_TRUE(torch::equal(ReadNpy(dir_ + "/i1.npy"),
                           torch::tensor({-128, 127}, torch::kInt8).reshape({2, 1})));
  const torch::Tensor scalar = ReadNpy(dir_ + "/scalar.npy");
  EXPECT_EQ(scalar.dim(), 0);
  EXPECT_EQ(scalar.item<double>(), 2.5);
  EXPECT_EQ(ReadNpy(dir_ + "/empty.npy").sizes(), c10::IntArrayRef({0, 3}));
  EXPECT_TRUE(torch::equal(ReadNpy(dir_ + "/v2.npy"), a));
  EXPECT_TRUE(torch::equal(ReadNpy(dir_ + "/v3.npy"), a));
  EXPECT_THAT(ReadError(dir_ + "/fortran.npy"), HasSubstr("fortran_order True"));
  EXPECT_THAT(ReadError(dir_ + "/big.npy"), HasSubstr("big-endian"));
}

TEST_F(NpyTest, NumpyReadsOurFiles) {
  if (!HaveNumpy()) GTEST_SKIP() << kPython << " with numpy is not available";
  WriteNpy(dir_ + "/f4.npy", torch::arange(6, torch::kFloat32).reshape({2, 3}) / 2);
  WriteNpy(dir_ + "/f8.npy", torch::tensor({-1.5, 1e300}, torch::kFloat64));
  WriteNpy(dir_ + "/i4.npy", torch::tensor({-7, 7}, torch::kInt32));
  WriteNpy(dir_ + "/i8.npy", torch::tensor({int64_t{1} << 40}, torch::kInt64));
  WriteNpy(dir_ + "/u1.npy", torch::tensor({0, 255}, torch::kUInt8));
  WriteNpy(dir_ + "/b1.npy", torch::tensor({false, true}));
  WriteNpy(dir_ + "/scalar.npy", torch::tensor(3.0));
  WriteNpy(dir_ + "/empty.npy", torch::zeros({0, 5}, torch::kFloat64));
  const std::string program =
      "import sys, numpy as np\n"
      "d = sys.argv[1]\n"
      "def check(name, expected):\n"
      "    a = np.load(d + '/' + name + '.npy', allow_pickle=False)\n"
      "    assert a.dtype == expected.dtype, (name, a.dtype)\n"
      "    assert a.shape == expected.shape, (name, a.shape)\n"
      "    assert np.array_equal(a, expected), (name, a)\n"
      "check('f4', np.arange(6, dtype=np.float32).reshape(2, 3) / np.float32(2))\n"
      "check('f8', np.array([-1.5, 1e300]))\n"
      "check('i4', np.array([-7, 7], dtype=np.int32))\n"
      "check('i8', np.array([1 << 40], dtype=np.int64))\n"
      "check('u1', np.array([0, 255], dtype=np.uint8))\n"
      "check('b1', np.array([False, True]))\n"
      "check('scalar', np.array(3.0, dtype=np.float32))\n"
      "check('empty', np.zeros((0, 5)))\n";
  EXPECT_TRUE(RunPython(program, dir_));
}

}  // namespace
}  // namespace sslsweep
