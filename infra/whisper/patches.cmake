# Included by CMake after each project() of the whisper.cpp build (CMAKE_PROJECT_INCLUDE, set in
# .cargo/config.toml; whisper-rs-sys passes CMAKE_* variables on). It patches whisper.cpp's own
# copy of its sources in the build directory, never the registry's. Each patch rewrites a line
# that must appear exactly once; if whisper.cpp changes it, the build stops and says which patch
# to check against the new version.
set(source "${CMAKE_CURRENT_SOURCE_DIR}/src/whisper.cpp")
if(NOT PROJECT_NAME STREQUAL "whisper.cpp" OR NOT EXISTS "${source}")
  return()
endif()
file(READ "${source}" text)
set(text_before "${text}")

# Replaces the one ORIGINAL line of the source by PATCHED, unless an earlier configure did.
function(ecg_patch original patched purpose)
  string(FIND "${text}" "${patched}" done)
  if(NOT done EQUAL -1)
    return()
  endif()
  string(FIND "${text}" "${original}" first)
  string(FIND "${text}" "${original}" last REVERSE)
  if(first EQUAL -1 OR NOT first EQUAL last)
    message(FATAL_ERROR "${source}: the line patched so that ${purpose} is no longer there once; check the new whisper.cpp and update infra/whisper/patches.cmake")
  endif()
  string(REPLACE "${original}" "${patched}" text "${text}")
  set(text "${text}" PARENT_SCOPE)
  message(STATUS "ecg: whisper.cpp patched so that ${purpose}")
endfunction()

# whisper.cpp aborts the process (WHISPER_ASSERT in its DTW median filter, width 7) when a decoding
# pass ends on a timestamp 0.14 s or less after the pass's start: the audio under the pass is then
# 7 attention frames or fewer. Such a pass happens mid-file as well as at the end of a window, and
# an abort would take every job of the process with it. The patch skips DTW for those passes; their
# tokens keep whisper.cpp's timestamp-token times (t_dtw stays -1), which the recogniser reads
# instead.
ecg_patch(
  "if (ctx->params.dtw_token_timestamps && n_segments) {"
  "if (ctx->params.dtw_token_timestamps && n_segments && std::min(std::min(WHISPER_CHUNK_SIZE * 100, seek_delta), seek_end - seek) > 2 * 7 + 1) { /* ecg: no DTW over 0.14 s or less */"
  "a decoding pass of 0.14 s or less gets no DTW times instead of aborting")

# Detecting the language encodes the window's first 30 s, and the decoding loop then encoded the
# same mel frames again: one encoder pass, about 1 s on two CPU threads, wasted per job. The loop
# now keeps the detection's encoder output when it starts at the same frame with the same audio
# context.
ecg_patch(
  "    // auto-detect language if not specified"
  "    int ecg_detected_ctx = -1; // ecg: the audio context language detection encoded frame 0 with\n    // auto-detect language if not specified"
  "language detection's encoder pass is reused")
ecg_patch(
  "        const auto lang_id = whisper_lang_auto_detect_with_state(ctx, state, 0, params.n_threads, probs.data());"
  "        const auto lang_id = whisper_lang_auto_detect_with_state(ctx, state, 0, params.n_threads, probs.data());\n        ecg_detected_ctx = state->exp_n_audio_ctx;"
  "language detection's encoder pass is reused")
ecg_patch(
  "        if (!whisper_encode_internal(*ctx, *state, seek, params.n_threads, params.abort_callback, params.abort_callback_user_data)) {"
  "        const bool ecg_encoded = seek == 0 && ecg_detected_ctx == state->exp_n_audio_ctx;\n        ecg_detected_ctx = -1;\n        if (!ecg_encoded && !whisper_encode_internal(*ctx, *state, seek, params.n_threads, params.abort_callback, params.abort_callback_user_data)) {"
  "language detection's encoder pass is reused")

if(NOT text STREQUAL text_before)
  file(WRITE "${source}" "${text}")
endif()
