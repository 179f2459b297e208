// Metadata files in the publishers' layouts and a file writer, shared by the dataset
// index tests (empty audio files) and the dataset loading tests (real audio files).
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace cadenza::testing {

// Writes `text` to `path`, creating its folder.
inline void write_file(const std::filesystem::path& path, const std::string& text = "") {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

inline const std::vector<std::string> kGtzanGenres = {"blues", "classical", "country", "disco",  "hiphop",
                                                      "jazz",  "metal",     "pop",     "reggae", "rock"};

// annotations_final.csv as published: tab-separated, every field quoted, CRLF. Tag
// counts: guitar 4, slow 3, classical 3 (slow's column comes first), techno 1 (only on
// the broken clip), no voice 0; so top2 is guitar, slow.
inline const std::string kMtatAnnotations =
    "\"clip_id\"\t\"no voice\"\t\"slow\"\t\"guitar\"\t\"classical\"\t\"techno\"\t\"mp3_path\"\r\n"
    "\"2\"\t\"0\"\t\"0\"\t\"1\"\t\"1\"\t\"0\"\t\"f/american_bach_soloists-1-01-30.mp3\"\r\n"
    "\"6\"\t\"0\"\t\"1\"\t\"1\"\t\"0\"\t\"0\"\t\"0/a, b\tc-2.mp3\"\r\n"
    "\"10\"\t\"0\"\t\"1\"\t\"1\"\t\"0\"\t\"0\"\t\"b/x-3.mp3\"\r\n"
    "\"11\"\t\"0\"\t\"1\"\t\"0\"\t\"1\"\t\"0\"\t\"c/x-4.mp3\"\r\n"
    "\"12\"\t\"0\"\t\"0\"\t\"0\"\t\"0\"\t\"0\"\t\"d/x-5.mp3\"\r\n"
    "\"35644\"\t\"0\"\t\"0\"\t\"1\"\t\"1\"\t\"1\"\t\"6/"
    "norine_braun-now_and_zen-08-gently-117-146.mp3\"\r\n";

// tracks.csv with its three header rows (group, column, track_id), a quoted album title
// holding a comma and a line break, tracks of each subset and a known broken small track
// (098559).
inline const std::string kFmaTracks =
    ",album,set,set,track,track\r\n"
    ",title,split,subset,genre_top,genres_all\r\n"
    "track_id,,,,,\r\n"
    "2,\"AWOL - A Way, Of\nLife\",training,small,Hip-Hop,[21]\r\n"
    "5,x,validation,small,Rock,\"[12, 25]\"\r\n"
    "10,x,test,small,Pop,[10]\r\n"
    "140,x,training,medium,Folk,[17]\r\n"
    "141,x,training,medium,,\"[17, 12]\"\r\n"
    "1486,x,training,medium,Rock,[12]\r\n"
    "200,x,test,large,Rock,[12]\r\n"
    "98559,x,validation,small,Rock,[12]\r\n";

// genres.csv: ids, parents and titles of the genres kFmaTracks uses.
inline const std::string kFmaGenres =
    "genre_id,#tracks,parent,title,top_level\n"
    "10,13845,0,Pop,10\n"
    "12,32923,0,Rock,12\n"
    "17,12706,0,Folk,17\n"
    "21,8389,0,Hip-Hop,21\n"
    "25,1000,12,Punk,12\n";

}  // namespace cadenza::testing
