# Included by CMake after each project() of the whisper.cpp build (CMAKE_PROJECT_INCLUDE, set in
# .cargo/config.toml; whisper-rs-sys passes CMAKE_* variables on). It patches whisper.cpp's own
# copy of its sources in the build directory, never the registry's.
#
# whisper.cpp aborts the process (WHISPER_ASSERT in its DTW median filter, width 7) when a decoding
# pass ends on a timestamp 0.14 s or less after the pass's start: the audio under the pass is then
# 7 attention frames or fewer. Such a pass happens mid-file as well as at the end of a window, and
# an abort would take every job of the process with it. The patch skips DTW for those passes; their
# tokens keep whisper.cpp's timestamp-token times (t_dtw stays -1), which the recogniser reads
# instead.
set(source "${CMAKE_CURRENT_SOURCE_DIR}/src/whisper.cpp")
if(NOT PROJECT_NAME STREQUAL "whisper.cpp" OR NOT EXISTS "${source}")
  return()
endif()
set(original "if (ctx->params.dtw_token_timestamps && n_segments) {")
set(patched "if (ctx->params.dtw_token_timestamps && n_segments && std::min(std::min(WHISPER_CHUNK_SIZE * 100, seek_delta), seek_end - seek) > 2 * 7 + 1) { /* ecg: no DTW over 0.14 s or less */")
file(READ "${source}" text)
string(FIND "${text}" "${patched}" done)
if(NOT done EQUAL -1)
  return()
endif()
string(FIND "${text}" "${original}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${source}: the DTW call this patch guards has changed; check whether whisper.cpp still aborts on short passes and update infra/whisper/dtw-short-pass.cmake")
endif()
string(REPLACE "${original}" "${patched}" text "${text}")
file(WRITE "${source}" "${text}")
message(STATUS "ecg: whisper.cpp skips DTW on decoding passes of 0.14 s or less")
